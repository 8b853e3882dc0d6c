package resource

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"unicode/utf8"
)

// operations lists the (method, name) pairs of a JSON-RPC body, reading it
// exactly as the MCP layer will: keys are case-sensitive, and the name comes
// from the field that the method defines — params.name for tools/call and
// prompts/get, params.uri for resources/*, params.ref.name or .uri for
// completion/complete. A body that is ambiguous (a duplicate key), that is
// not one well-formed JSON value, or whose name field has the wrong type is
// an error, never "no operation": the scope check must not be bypassable by
// shaping the JSON.
//
// It runs on every POST, so it walks the bytes instead of decoding them:
// one json.Valid pass (which allocates nothing), then a walk that may
// assume well-formed JSON and allocates only the strings it returns, and
// a key only when it has escapes.
func operations(body []byte) ([][2]string, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, nil // no operation; the MCP layer refuses the empty body
	}
	if !json.Valid(trimmed) {
		return nil, errMalformed
	}
	var ops [][2]string
	var seen map[[2]string]bool // once there are too many to compare pairwise
	add := func(msg []byte) error {
		op, ok, err := operation(msg)
		if !ok {
			return err
		}
		if seen == nil && len(ops) >= 16 {
			seen = make(map[[2]string]bool, 2*len(ops))
			for _, o := range ops {
				seen[o] = true
			}
		}
		if seen != nil {
			if !seen[op] {
				seen[op] = true
				ops = append(ops, op)
			}
		} else if !slices.Contains(ops, op) {
			ops = append(ops, op)
		}
		return err
	}
	if trimmed[0] != '[' {
		if err := add(trimmed); err != nil {
			return nil, err
		}
		return ops, nil
	}
	for i := skipSpace(trimmed, 1); trimmed[i] != ']'; {
		end := valueEnd(trimmed, i)
		if err := add(trimmed[i:end]); err != nil {
			return nil, err
		}
		if i = skipSpace(trimmed, end); trimmed[i] == ',' {
			i = skipSpace(trimmed, i+1)
		}
	}
	return ops, nil
}

var errMalformed = errors.New("the request body is not a well-formed JSON-RPC message")

// operation is the (method, name) of one well-formed message; ok is false
// for a response, which has no method.
func operation(msg []byte) (op [2]string, ok bool, err error) {
	var methodRaw, paramsRaw []byte
	if err := members(msg, func(key, val []byte) {
		switch string(key) {
		case "method":
			methodRaw = val
		case "params":
			paramsRaw = val
		}
	}); err != nil {
		return op, false, err
	}
	if methodRaw == nil {
		return op, false, nil // a response: no operation
	}
	method, err := stringValue(methodRaw)
	if err != nil || method == "" {
		return op, false, errMalformed
	}
	var name string
	if paramsRaw != nil && !bytes.Equal(paramsRaw, []byte("null")) {
		var nameRaw, uriRaw, refRaw []byte
		if err := members(paramsRaw, func(key, val []byte) {
			switch string(key) {
			case "name":
				nameRaw = val
			case "uri":
				uriRaw = val
			case "ref":
				refRaw = val
			}
		}); err != nil {
			return op, false, err
		}
		switch method {
		case "tools/call", "prompts/get":
			name, err = stringValue(nameRaw)
		case "resources/read", "resources/subscribe", "resources/unsubscribe":
			name, err = stringValue(uriRaw)
		case "completion/complete":
			if refRaw != nil {
				var typeRaw, refNameRaw, refURIRaw []byte
				err = members(refRaw, func(key, val []byte) {
					switch string(key) {
					case "type":
						typeRaw = val
					case "name":
						refNameRaw = val
					case "uri":
						refURIRaw = val
					}
				})
				var typ string
				if err == nil {
					typ, err = stringValue(typeRaw)
				}
				if err == nil {
					if typ == "ref/resource" {
						name, err = stringValue(refURIRaw)
					} else {
						name, err = stringValue(refNameRaw)
					}
				}
			}
		}
		if err != nil {
			return op, false, err
		}
	}
	return [2]string{method, name}, true, nil
}

// members calls f with the (unescaped) key and the raw value of each
// member of obj, a well-formed JSON value, in order. It refuses a value
// that is not an object, and an object that repeats a key.
func members(obj []byte, f func(key, val []byte)) error {
	i := skipSpace(obj, 0)
	if i == len(obj) || obj[i] != '{' {
		return errMalformed
	}
	var small [16][]byte
	keys := small[:0]
	var many map[string]bool // once there are too many keys to compare pairwise
	for i = skipSpace(obj, i+1); obj[i] != '}'; {
		end := stringEnd(obj, i)
		key := obj[i+1 : end-1]
		if !plainString(key) {
			var s string
			if json.Unmarshal(obj[i:end], &s) != nil {
				return errMalformed
			}
			key = []byte(s)
		}
		dup := false
		if many != nil {
			dup = many[string(key)]
			many[string(key)] = true
		} else if dup = slices.ContainsFunc(keys, func(k []byte) bool { return bytes.Equal(k, key) }); !dup {
			if keys = append(keys, key); len(keys) > 32 {
				many = make(map[string]bool, 2*len(keys))
				for _, k := range keys {
					many[string(k)] = true
				}
			}
		}
		if dup {
			return errors.New("the request body repeats the key " + strconv.Quote(string(key)))
		}
		i = skipSpace(obj, skipSpace(obj, end)+1) // past the colon
		end = valueEnd(obj, i)
		f(key, obj[i:end])
		if i = skipSpace(obj, end); obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
	return nil
}

// stringValue decodes a JSON string as encoding/json does: "" for an
// absent value (nil) and for null, an error for another type.
func stringValue(raw []byte) (string, error) {
	if raw == nil || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	if raw[0] != '"' {
		return "", errMalformed
	}
	if inner := raw[1 : len(raw)-1]; plainString(inner) {
		return string(inner), nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", errMalformed
	}
	return s, nil
}

// plainString reports whether the contents of a well-formed JSON string
// are its value: no escapes, and valid UTF-8 (which encoding/json would
// otherwise replace by U+FFFD).
func plainString(inner []byte) bool {
	return bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner)
}

// The walk below assumes well-formed JSON (json.Valid): each function
// gets the index of a token and returns the index past it.

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index past the string starting at b[i] ('"').
func stringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// valueEnd returns the index past the value starting at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = stringEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	default: // a number, true, false or null
		for i < len(b) && bytes.IndexByte([]byte(" \t\r\n,]}"), b[i]) < 0 {
			i++
		}
		return i
	}
}
