package render

import (
	"bytes"
	"path"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	sigsyaml "sigs.k8s.io/yaml"
)

// Each rendered object is traced to the file it came from, so that a
// refusal (out of scope, too large) names the file a person has to change.
// Kustomize records that in the config.kubernetes.io/origin annotation, but
// only when the kustomization asks for it (buildMetadata:
// [originAnnotations]). originFS serves the kustomization being built with
// that request added, and origins reads the annotations back and removes
// them unless the kustomization asked for them itself, so the rendering and
// its digest stay what the repository says (TestRenderFiles).

// originAnnotation is where kustomize records an object's origin.
const originAnnotation = "config.kubernetes.io/origin"

// originFS is the tree filesystem with the root kustomization file rewritten
// to ask for origin annotations.
type originFS struct {
	*treeFS
	kfile string // repository-relative path of the root kustomization file
	data  []byte // its rewritten content
}

// withOrigins returns a filesystem that serves kfile asking for origin
// annotations, and whether kfile asked for them itself. A kustomization it
// cannot rewrite is served as it is; kustomize reports what is wrong with it.
func withOrigins(f *treeFS, kfile string, data []byte) (filesys.FileSystem, bool) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return f, false
	}
	top := doc.Content[0]
	var meta *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value == "buildMetadata" {
			meta = top.Content[i+1]
		}
	}
	switch {
	case meta == nil:
		meta = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		top.Content = append(top.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "buildMetadata"}, meta)
	case meta.Kind != yaml.SequenceNode:
		return f, false
	}
	for _, m := range meta.Content {
		if m.Value == types.OriginAnnotations {
			return f, true
		}
	}
	meta.Content = append(meta.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: types.OriginAnnotations})
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	if err := enc.Encode(&doc); err != nil || enc.Close() != nil {
		return f, false
	}
	return &originFS{treeFS: f, kfile: kfile, data: out.Bytes()}, false
}

func (o *originFS) isKfile(name string) bool {
	rel, err := repoPath(name)
	return err == nil && rel == o.kfile
}

// ReadFile serves the rewritten kustomization, every other file as it is.
func (o *originFS) ReadFile(name string) ([]byte, error) {
	if o.isKfile(name) {
		return bytes.Clone(o.data), nil
	}
	return o.treeFS.ReadFile(name)
}

// Open serves the rewritten kustomization, every other file as it is.
func (o *originFS) Open(name string) (filesys.File, error) {
	if o.isKfile(name) {
		return &treeFile{name: name, info: fileInfo{name: path.Base(name), size: int64(len(o.data)), mode: 0o444}, r: bytes.NewReader(bytes.Clone(o.data))}, nil
	}
	return o.treeFS.Open(name)
}

// originOf returns the repository path of the file obj came from, built
// from dir (the kustomization's directory), and removes the annotation
// unless keep. An object without one yields "".
func originOf(obj *unstructured.Unstructured, dir string, keep bool) string {
	ann := obj.GetAnnotations()
	raw, ok := ann[originAnnotation]
	if !ok {
		return ""
	}
	if !keep {
		delete(ann, originAnnotation)
		if len(ann) == 0 {
			ann = nil
		}
		obj.SetAnnotations(ann)
	}
	var o resource.Origin
	if err := sigsyaml.Unmarshal([]byte(raw), &o); err != nil {
		return ""
	}
	p := o.Path
	if o.ConfiguredIn != "" {
		p = o.ConfiguredIn
	}
	if o.Repo != "" || p == "" {
		return ""
	}
	return path.Join(dir, p)
}
