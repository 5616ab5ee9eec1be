package index

import (
	"bytes"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// decodeWALBrief reads a WAL record's JSON into w without encoding/json,
// whose validation pass and reflection make up most of a lifecycle plan
// over a large catalog. It accepts only the plain form json.Marshal
// writes for a WALObject: one object, no whitespace, strings without
// escapes, integers, and the backends array and classes object as the
// only nesting. Anything else returns false and the caller decodes the
// record with encoding/json.
func decodeWALBrief(data []byte, w *WALBrief) bool {
	p := briefParser{b: data}
	if !p.byte('{') {
		return false
	}
	*w = WALBrief{}
	if p.peek('}') {
		p.i++
		return p.i == len(p.b)
	}
	for {
		key, ok := p.str()
		if !ok || !p.byte(':') {
			return false
		}
		switch string(key) {
		case "key":
			if w.Key, ok = p.strValue(); !ok {
				return false
			}
		case "backend":
			if w.Backend, ok = p.strValue(); !ok {
				return false
			}
		case "size":
			if w.Size, ok = p.int(); !ok {
				return false
			}
		case "stored_at":
			s, ok := p.str()
			if !ok {
				return false
			}
			t, err := time.Parse(time.RFC3339Nano, string(s))
			if err != nil {
				return false
			}
			w.StoredAt = t
		case "backends":
			if w.Backends, ok = p.strArray(); !ok {
				return false
			}
		case "classes":
			if w.Classes, ok = p.strMap(); !ok {
				return false
			}
		default:
			// encoding/json matches keys case-insensitively: leave such
			// records to it.
			for _, k := range briefKeys {
				if strings.EqualFold(string(key), k) {
					return false
				}
			}
			if !p.skipScalar() {
				return false
			}
		}
		if p.peek(',') {
			p.i++
			continue
		}
		if !p.byte('}') {
			return false
		}
		return p.i == len(p.b)
	}
}

var briefKeys = []string{"key", "backend", "size", "stored_at", "backends", "classes"}

type briefParser struct {
	b []byte
	i int
}

func (p *briefParser) peek(c byte) bool { return p.i < len(p.b) && p.b[p.i] == c }

func (p *briefParser) byte(c byte) bool {
	if !p.peek(c) {
		return false
	}
	p.i++
	return true
}

// str reads a string without escapes (a backslash fails the fast path).
func (p *briefParser) str() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	end := bytes.IndexByte(p.b[p.i:], '"')
	if end < 0 {
		return nil, false
	}
	s := p.b[p.i : p.i+end]
	if bytes.IndexByte(s, '\\') >= 0 {
		return nil, false
	}
	for _, c := range s {
		if c < 0x20 {
			return nil, false
		}
	}
	if !utf8.Valid(s) {
		return nil, false
	}
	p.i += end + 1
	return s, true
}

func (p *briefParser) strValue() (string, bool) {
	s, ok := p.str()
	return string(s), ok
}

func (p *briefParser) int() (int64, bool) {
	start := p.i
	if p.peek('-') {
		p.i++
	}
	digits := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	if p.i-digits > 1 && p.b[digits] == '0' {
		return 0, false // JSON has no leading zeros
	}
	n, err := strconv.ParseInt(string(p.b[start:p.i]), 10, 64)
	return n, err == nil
}

func (p *briefParser) strArray() ([]string, bool) {
	if p.i+4 <= len(p.b) && string(p.b[p.i:p.i+4]) == "null" {
		p.i += 4
		return nil, true
	}
	if !p.byte('[') {
		return nil, false
	}
	var out []string
	if p.byte(']') {
		return []string{}, true
	}
	for {
		s, ok := p.strValue()
		if !ok {
			return nil, false
		}
		out = append(out, s)
		if p.byte(']') {
			return out, true
		}
		if !p.byte(',') {
			return nil, false
		}
	}
}

func (p *briefParser) strMap() (map[string]string, bool) {
	if p.i+4 <= len(p.b) && string(p.b[p.i:p.i+4]) == "null" {
		p.i += 4
		return nil, true
	}
	if !p.byte('{') {
		return nil, false
	}
	out := map[string]string{}
	if p.byte('}') {
		return out, true
	}
	for {
		k, ok := p.strValue()
		if !ok || !p.byte(':') {
			return nil, false
		}
		v, ok := p.strValue()
		if !ok {
			return nil, false
		}
		out[k] = v
		if p.byte('}') {
			return out, true
		}
		if !p.byte(',') {
			return nil, false
		}
	}
}

// skipScalar passes over a string, integer, true, false or null.
func (p *briefParser) skipScalar() bool {
	if p.peek('"') {
		_, ok := p.str()
		return ok
	}
	for _, lit := range []string{"true", "false", "null"} {
		if bytes.HasPrefix(p.b[p.i:], []byte(lit)) {
			p.i += len(lit)
			return true
		}
	}
	_, ok := p.int()
	return ok
}
