package reconciler

import (
	"github.com/fluxcd/cli-utils/pkg/object"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func objMetadata(o *unstructured.Unstructured) object.ObjMetadata {
	return object.UnstructuredToObjMetadata(o)
}
