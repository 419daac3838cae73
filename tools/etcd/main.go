// Command etcd is etcd's server, built from the pinned go.etcd.io/etcd/server/v3
// module for ferry's local test cluster.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
