package httpjson

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/writhq/writ/internal/refusal"
)

// BodyError is a request body refused by Unmarshal. Its text names the member
// at fault, such as `unknown field "args"`; it never repeats a submitted
// value, only member names.
type BodyError struct {
	// Field is the path of the member at fault, its names joined by dots
	// and array positions as numbers ("scope.limits", "arguments.items.2.id");
	// empty when the fault is the body as a whole.
	Field  string
	Detail string
}

func (e *BodyError) Error() string { return e.Detail }

// Decode reads a JSON request body of at most limit bytes into v with
// Unmarshal. When it fails it has answered, and returns false: 415
// unsupported_media_type unless the Content-Type is application/json
// (with at most charset=utf-8), 413 too_large past the limit, 400
// invalid_request naming the member at fault.
func Decode(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	if !JSONContentType(r.Header.Get("Content-Type")) {
		Error(w, refusal.UnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json")
		return false
	}
	buf, ok := ReadBody(w, r, limit)
	if !ok {
		return false
	}
	if err := Unmarshal(buf, v); err != nil {
		Error(w, refusal.Invalid, "invalid_request", err.Error())
		return false
	}
	return true
}

// JSONContentType reports whether a Content-Type names JSON as writ takes
// it: application/json, optionally with charset=utf-8 (RFC 8259 §8.1
// allows no other encoding).
func JSONContentType(ct string) bool {
	return ct == "application/json" || IsMediaType(ct, "application/json")
}

// IsMediaType reports whether the Content-Type ct is the media type mt
// with no parameter but, optionally, charset=utf-8.
func IsMediaType(ct, mt string) bool {
	got, params, err := mime.ParseMediaType(ct)
	if err != nil || got != mt {
		return false
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return false
		}
	}
	return true
}

// strict is how request bodies are read: member names match exactly (no
// case folding), unknown members, duplicate names at any depth (also
// inside free-form members such as arguments), invalid UTF-8 and unpaired
// surrogate escapes are errors. These are the defaults of encoding/json/v2
// (vendored as github.com/go-json-experiment/json until it leaves
// GOEXPERIMENT) plus RejectUnknownMembers.
var strict = jsonv2.JoinOptions(
	jsonv2.RejectUnknownMembers(true),
	jsonv2.MatchCaseInsensitiveNames(false),
	jsontext.AllowDuplicateNames(false),
	jsontext.AllowInvalidUTF8(false),
)

// Unmarshal decodes one JSON object into v, strictly: a member v has no
// field for (compared byte for byte with its json tag, so "AGENT" is not
// "agent"), a name twice in one object at any depth, invalid UTF-8, and
// anything but one object (null, an array, trailing data) is a *BodyError.
// What it accepts, encoding/json decodes to the same value: a lenient
// reading never sees a different body than the one that was checked.
func Unmarshal(data []byte, v any) error {
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 {
		return &BodyError{Detail: "the request body is empty; send a JSON object"}
	} else if t[0] != '{' {
		return &BodyError{Detail: "the request body must be a JSON object"}
	}
	if err := jsonv2.Unmarshal(data, v, strict); err != nil {
		return describe(err)
	}
	return nil
}

// describe turns a decoding error into a *BodyError naming the member.
func describe(err error) *BodyError {
	var se *jsontext.SyntacticError
	var me *jsonv2.SemanticError
	switch {
	case errors.As(err, &se):
		field := fieldPath(string(se.JSONPointer))
		if errors.Is(se.Err, jsontext.ErrDuplicateName) {
			return &BodyError{Field: field, Detail: fmt.Sprintf("duplicate key %q", field)}
		}
		d := fmt.Sprintf("the request body is not valid JSON at byte %d", se.ByteOffset)
		if field != "" {
			d += fmt.Sprintf(" (in %q)", field)
		}
		return &BodyError{Field: field, Detail: d + ": " + syntaxReason(se.Err)}
	case errors.As(err, &me):
		field := fieldPath(string(me.JSONPointer))
		if errors.Is(me.Err, jsonv2.ErrUnknownName) {
			d := fmt.Sprintf("unknown field %q", field)
			if known := caseVariant(me.GoType, lastName(field)); known != "" {
				d += fmt.Sprintf(" (names are case-sensitive: did you mean %q?)", known)
			}
			return &BodyError{Field: field, Detail: d}
		}
		if field == "" {
			return &BodyError{Detail: "the request body must be a JSON object"}
		}
		d := fmt.Sprintf("field %q: want %s", field, goKind(me.GoType))
		if me.JSONKind != 0 {
			d += ", got " + jsonKind(me.JSONKind)
		}
		return &BodyError{Field: field, Detail: d}
	}
	return &BodyError{Detail: "the request body is not the expected JSON object"}
}

// syntaxReason says what is wrong without quoting the submitted bytes.
func syntaxReason(err error) string {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "it ends before the object does"
	case strings.Contains(msg, "UTF-8"):
		return "invalid UTF-8"
	case strings.Contains(msg, "surrogate"):
		return "an invalid or unpaired surrogate escape"
	case strings.Contains(msg, "after top-level value"):
		return "data after the JSON object"
	}
	return "invalid syntax"
}

// fieldPath turns a JSON Pointer (RFC 6901) into a dotted path.
func fieldPath(ptr string) string {
	if ptr == "" {
		return ""
	}
	parts := strings.Split(strings.TrimPrefix(ptr, "/"), "/")
	for i, p := range parts {
		p = strings.ReplaceAll(p, "~1", "/")
		parts[i] = strings.ReplaceAll(p, "~0", "~")
	}
	s := strings.Join(parts, ".")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func lastName(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}

// caseVariant returns the json name of t's field that name differs from
// only in case, or "".
func caseVariant(t reflect.Type, name string) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return ""
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "" {
			tag = f.Name
		}
		if f.IsExported() && tag != "-" && tag != name && strings.EqualFold(tag, name) {
			return tag
		}
	}
	return ""
}

func goKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

func jsonKind(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 'f', 't':
		return "a boolean"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "another value"
}
