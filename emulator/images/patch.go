package images

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/imageflow/imageflow/emulator/internal/core"
)

// patchOp is one JSON-patch operation on an image.
type patchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value"`
}

// Glance's two patch media types. v2.1 is RFC 6902: {"op":"add","path":"/x","value":...}, and
// an add of an existing property replaces it. v2.0 is the older draft: {"add":"/x","value":...},
// and an add of an existing property is a conflict.
const (
	patchV21 = "application/openstack-images-v2.1-json-patch"
	patchV20 = "application/openstack-images-v2.0-json-patch"
)

// readPatch decodes the body in the request's media type; it answers 400 itself on failure.
func readPatch(w http.ResponseWriter, r *http.Request, mediaType string) ([]patchOp, bool) {
	if mediaType == patchV21 {
		var ops []patchOp
		return ops, core.ReadJSON(w, r, &ops)
	}
	var raw []map[string]json.RawMessage
	if !core.ReadJSON(w, r, &raw) {
		return nil, false
	}
	ops := make([]patchOp, len(raw))
	for i, m := range raw {
		n := 0
		for _, op := range []string{"add", "replace", "remove"} {
			if p, ok := m[op]; ok {
				n++
				ops[i].Op, ops[i].Value = op, m["value"]
				if json.Unmarshal(p, &ops[i].Path) != nil {
					core.Fail(w, 400, "operation %d: the path of %s must be a string", i+1, op)
					return nil, false
				}
			}
		}
		if n != 1 {
			core.Fail(
				w,
				400,
				"operation %d: Operation objects must contain exactly one member named add, remove, or replace.",
				i+1,
			)
			return nil, false
		}
	}
	return ops, true
}

// patchError carries the status a failed operation answers with.
type patchError struct {
	code int
	msg  string
}

func (p *patchError) Error() string { return p.msg }

func patchErr(code int, format string, args ...any) *patchError {
	return &patchError{code, fmt.Sprintf(format, args...)}
}

var readOnlyAttrs = map[string]bool{"id": true, "status": true, "checksum": true, "size": true, "virtual_size": true,
	"created_at": true, "updated_at": true, "self": true, "file": true, "schema": true, "direct_url": true, "owner": true,
	"os_hash_algo": true, "os_hash_value": true}

var reservedAttrs = map[string]bool{"location": true, "locations": true, "deleted": true, "deleted_at": true}

// coreAttrs are the writable core attributes; they can be replaced but never removed.
var coreAttrs = map[string]bool{"name": true, "visibility": true, "protected": true, "tags": true,
	"min_disk": true, "min_ram": true, "disk_format": true, "container_format": true}

// MaxProps is Glance's default quota of properties per image.
const MaxProps = 128

func (s *Service) patchImage(w http.ResponseWriter, r *http.Request, reg *Region, _ string) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != patchV21 && mt != patchV20) {
		core.Fail(w, 415, "Unsupported Content-Type %q: use %s", r.Header.Get("Content-Type"), patchV21)
		return
	}
	ops, ok := readPatch(w, r, mt)
	if !ok {
		return
	}
	w, unlock := s.store.LockReply(w)
	defer unlock()
	img := ownedImage(w, reg, r.PathValue("id"), core.Caller(r))
	if img == nil {
		return
	}
	next, err := applyPatch(img, ops, mt == patchV20)
	if err != nil {
		pe := err.(*patchError)
		core.Fail(w, pe.code, "%s", pe.msg)
		return
	}
	next.UpdatedAt = core.Now()
	*img = *next
	s.store.Commit()
	core.WriteJSON(w, 200, img.view())
}

// applyPatch applies ops to a copy of img, so a failing operation changes nothing.
// strictAdd (the v2.0 media type) makes an add of an existing property a conflict.
func applyPatch(img *Image, ops []patchOp, strictAdd bool) (*Image, error) {
	cp := *img
	cp.Props = make(map[string]string, len(img.Props))
	for k, v := range img.Props {
		cp.Props[k] = v
	}
	cp.Tags = append([]string{}, img.Tags...)
	for i, op := range ops {
		if err := applyOp(&cp, op, strictAdd); err != nil {
			pe := err.(*patchError)
			pe.msg = fmt.Sprintf("operation %d (%s %s): %s", i+1, op.Op, op.Path, pe.msg)
			return nil, pe
		}
	}
	if len(cp.Props) > MaxProps {
		return nil, patchErr(413, "Attempted to add or update image properties past the limit of %d.", MaxProps)
	}
	return &cp, nil
}

func applyOp(img *Image, op patchOp, strictAdd bool) error {
	if op.Op != "add" && op.Op != "replace" && op.Op != "remove" {
		return patchErr(400, "op must be add, replace or remove")
	}
	name, err := patchPath(op.Path)
	if err != nil {
		return err
	}
	if op.Op != "remove" && len(op.Value) == 0 {
		return patchErr(400, "%s needs a value", op.Op)
	}
	switch {
	case readOnlyAttrs[name]:
		return patchErr(403, "Attribute '%s' is read-only.", name)
	case reservedAttrs[name]:
		return patchErr(403, "Attribute '%s' is reserved.", name)
	case strings.HasPrefix(name, "com.rackspace"):
		return patchErr(403, "Attribute '%s' is reserved for Rackspace.", name)
	case coreAttrs[name]:
		if op.Op == "add" && strictAdd {
			return patchErr(409, "Property %s already present.", name)
		}
		if op.Op == "remove" {
			return patchErr(403, "Attribute '%s' is a base attribute and cannot be removed.", name)
		}
		return setCore(img, name, op.Value)
	}
	_, exists := img.Props[name]
	switch op.Op {
	case "add":
		if exists && strictAdd {
			return patchErr(409, "Property %s already present.", name)
		}
	case "replace", "remove":
		if !exists {
			return patchErr(409, "Property %s does not exist.", name)
		}
	}
	if op.Op == "remove" {
		delete(img.Props, name)
		return nil
	}
	var v string
	if err := json.Unmarshal(op.Value, &v); err != nil {
		return patchErr(400, "value of property %s must be a string", name)
	}
	if len(v) > 65535 {
		return patchErr(400, "value of property %s is longer than 65535 characters", name)
	}
	img.Props[name] = v
	return nil
}

// patchPath turns "/name" into "name", undoing the ~1 and ~0 escapes; deeper paths are invalid.
func patchPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") || len(p) < 2 {
		return "", patchErr(400, "path must be \"/<attribute>\"")
	}
	tok := p[1:]
	if strings.Contains(tok, "/") {
		return "", patchErr(400, "path %q has more than one token", p)
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] == '~' && (i+1 == len(tok) || (tok[i+1] != '0' && tok[i+1] != '1')) {
			return "", patchErr(400, "path %q has a bad ~ escape", p)
		}
	}
	tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
	if len(tok) > 255 {
		return "", patchErr(400, "attribute name is longer than 255 characters")
	}
	return tok, nil
}

func setCore(img *Image, name string, raw json.RawMessage) error {
	bad := func(want string) error { return patchErr(400, "value of %s must be %s", name, want) }
	switch name {
	case "name":
		var s *string
		if json.Unmarshal(raw, &s) != nil || s == nil || len(*s) > 255 {
			return bad("a string of at most 255 characters")
		}
		img.Name = *s
	case "visibility":
		var s string
		if json.Unmarshal(raw, &s) != nil || (s != "private" && s != "public" && s != "shared") {
			return bad("private or shared")
		}
		if s == "public" {
			return patchErr(403, "Only Rackspace may publish public images.")
		}
		img.Visibility = s
	case "protected":
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			return bad("true or false")
		}
		img.Protected = b
	case "tags":
		var ts []string
		if json.Unmarshal(raw, &ts) != nil {
			return bad("a list of strings")
		}
		if len(ts) > maxTags {
			return patchErr(413, "Attempted to add tags past the limit of %d.", maxTags)
		}
		img.Tags = uniq(ts)
	case "min_disk", "min_ram":
		var n int
		if json.Unmarshal(raw, &n) != nil || n < 0 {
			return bad("a non-negative integer")
		}
		if name == "min_disk" {
			img.MinDisk = n
		} else {
			img.MinRAM = n
		}
	case "disk_format", "container_format":
		if img.Status != "queued" {
			return patchErr(403, "Attribute '%s' can be only replaced for a queued image.", name)
		}
	}
	return nil
}

func uniq(xs []string) []string {
	out := []string{}
	for _, x := range xs {
		if !contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}
