// Package render builds an environment's manifests straight from a git
// commit: the Kustomize overlay (or plain directory of YAML) at a path of the
// commit's tree, read through a read-only filesystem over the tree, with no
// checkout on disk.
//
// Nothing outside the repository is read: plugins, Helm and remote bases are
// off, and every path that leaves the repository (parent directories, absolute
// paths, symbolic links) is refused. The result is the ordered objects plus a
// digest of their normalised form; renderings are cached per commit tree and
// directory.
package render
