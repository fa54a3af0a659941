package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// checkKeys reads a JSON document the way encoding/json would decode it into a value of type t,
// and refuses what encoding/json lets through: a key given twice (the last would win, so two
// readers could disagree on the tenant), and a key that matches a field only when case is
// ignored ("Tenant" for "tenant"). Unknown keys are left to DisallowUnknownFields.
func checkKeys(data []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return checkValue(dec, t, "")
}

func checkValue(dec *json.Decoder, t reflect.Type, at string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch tok {
	case json.Delim('{'):
		return checkObject(dec, t, at)
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for dec.More() {
			if err := checkValue(dec, elem, at+"[]"); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ]
		return err
	}
	return nil
}

func checkObject(dec *json.Decoder, t reflect.Type, at string) error {
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		k, _ := tok.(string)
		if seen[k] {
			return fmt.Errorf("key %q appears twice in %s", k, where(at))
		}
		seen[k] = true
		child, err := fieldType(t, k, at)
		if err != nil {
			return err
		}
		if err := checkValue(dec, child, at+"."+k); err != nil {
			return err
		}
	}
	_, err := dec.Token() // }
	return err
}

// fieldType is the type the value under key k decodes into (nil: any), or an error when k
// matches a field only by ignoring case.
func fieldType(t reflect.Type, k, at string) (reflect.Type, error) {
	if t == nil {
		return nil, nil
	}
	switch t.Kind() {
	case reflect.Map:
		return t.Elem(), nil
	case reflect.Struct:
	default:
		return nil, nil
	}
	var folded string
	for f := range jsonFields(t) {
		if f.name == k {
			return f.typ, nil
		}
		if strings.EqualFold(f.name, k) {
			folded = f.name
		}
	}
	if folded != "" {
		return nil, fmt.Errorf("key %q in %s: keys are case-sensitive, did you mean %q?", k, where(at), folded)
	}
	return nil, nil
}

type jsonField struct {
	name string
	typ  reflect.Type
}

// jsonFields yields a struct's JSON field names, flattening embedded structs as encoding/json does.
func jsonFields(t reflect.Type) func(func(jsonField) bool) {
	return func(yield func(jsonField) bool) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				for ef := range jsonFields(f.Type) {
					if !yield(ef) {
						return
					}
				}
				continue
			}
			if name == "" {
				name = f.Name
			}
			typ := f.Type
			if typ == reflect.TypeOf(json.RawMessage(nil)) {
				typ = nil
			}
			if !yield(jsonField{name, typ}) {
				return
			}
		}
	}
}

func where(at string) string {
	if at == "" {
		return "the object"
	}
	return strings.TrimPrefix(at, ".")
}
