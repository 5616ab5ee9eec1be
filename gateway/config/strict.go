package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// DurationHelp says how to write a duration in the config.
const DurationHelp = "write a duration as a number and a unit, e.g. 90s, 15m, 36h, 14d or 2w (units: ms, s, m, h, d = 24h, w = 7d; combined: 1d12h)"

var durationPart = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h|d|w)`)

// ParseDuration reads a configuration duration: Go's units (ns to h) plus
// d (24 hours) and w (7 days), parts added up ("1w2d12h"); "0" is zero.
// Every time.Duration field of the gateway config is read through it.
func ParseDuration(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	neg := strings.HasPrefix(in, "-")
	in = strings.TrimPrefix(in, "-")
	if in == "0" {
		return 0, nil
	}
	if in == "" {
		return 0, fmt.Errorf("empty duration: %s", DurationHelp)
	}
	var total float64
	for in != "" {
		m := durationPart.FindStringSubmatch(in)
		if m == nil {
			return 0, fmt.Errorf("%q is not a duration: %s", s, DurationHelp)
		}
		n, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration: %s", s, DurationHelp)
		}
		unit := map[string]time.Duration{"ns": time.Nanosecond, "us": time.Microsecond, "µs": time.Microsecond,
			"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour,
			"d": 24 * time.Hour, "w": 7 * 24 * time.Hour}[m[2]]
		total += n * float64(unit)
		in = in[len(m[0]):]
	}
	if total > float64(1<<63-1) {
		return 0, fmt.Errorf("%q is too long a duration", s)
	}
	if neg {
		total = -total
	}
	return time.Duration(total), nil
}

// Problem is one thing wrong in a config file, where it is.
type Problem struct {
	Line int    // 1-based line in the file
	Path string // key path, e.g. health.stall_factor or backends[0].s3.bucket
	Msg  string
	// Unknown is set for a key the schema does not have; Known are the
	// keys allowed at that place (for "did you mean").
	Unknown string
	Known   []string
}

// ParseError lists every problem found in a config file.
type ParseError struct {
	File     string
	Problems []Problem
	// Suggest, when set, picks the key an unknown key most likely meant
	// from the known ones ("" for none).
	Suggest func(word string, known []string) string
}

func (e *ParseError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s:%d: %s: %s", e.File, p.Line, p.Path, p.Msg)
		if p.Unknown != "" {
			if s := e.suggest(p); s != "" {
				fmt.Fprintf(&b, "; did you mean %s?", s)
			} else {
				fmt.Fprintf(&b, " (known here: %s)", strings.Join(p.Known, ", "))
			}
		}
	}
	return b.String()
}

func (e *ParseError) suggest(p Problem) string {
	if e.Suggest == nil {
		return ""
	}
	return e.Suggest(p.Unknown, p.Known)
}

var (
	durationType    = reflect.TypeOf(time.Duration(0))
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
)

// checkNode walks node against the Go type t: it reports unknown keys and
// values of the wrong kind with their line and key path, and rewrites
// every duration into Go's notation so the decoder reads it.
func checkNode(node *yaml.Node, t reflect.Type, path string, probs *[]Problem) {
	for node.Kind == yaml.AliasNode && node.Alias != nil {
		node = node.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if node.Kind == yaml.ScalarNode && node.Tag == "!!null" {
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return
	}
	add := func(n *yaml.Node, msg string) {
		*probs = append(*probs, Problem{Line: n.Line, Path: path, Msg: msg})
	}
	if t == durationType {
		if node.Kind != yaml.ScalarNode {
			add(node, DurationHelp)
			return
		}
		d, err := ParseDuration(node.Value)
		if err != nil {
			add(node, err.Error())
			return
		}
		node.Value, node.Tag, node.Style = d.String(), "!!str", 0
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if node.Kind != yaml.MappingNode {
			add(node, "want a section of keys (key: value lines, indented)")
			return
		}
		fields := map[string]reflect.Type{}
		var known []string
		yamlFields(t, fields, &known)
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, v := node.Content[i], node.Content[i+1]
			sub := join(path, k.Value)
			ft, ok := fields[k.Value]
			if !ok {
				*probs = append(*probs, Problem{Line: k.Line, Path: sub, Msg: "unknown key", Unknown: k.Value, Known: known})
				continue
			}
			checkNode(v, ft, sub, probs)
		}
	case reflect.Slice:
		if node.Kind != yaml.SequenceNode {
			add(node, "want a list (lines starting with -)")
			return
		}
		for i, el := range node.Content {
			checkNode(el, t.Elem(), fmt.Sprintf("%s[%d]", path, i), probs)
		}
	case reflect.Map:
		if node.Kind != yaml.MappingNode {
			add(node, "want a section of keys")
			return
		}
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, v := node.Content[i], node.Content[i+1]
			checkNode(v, t.Elem(), join(path, k.Value), probs)
		}
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		want := map[reflect.Kind]string{reflect.Bool: "true or false", reflect.Float32: "a number", reflect.Float64: "a number"}[t.Kind()]
		if want == "" {
			want = "a whole number"
		}
		if node.Kind != yaml.ScalarNode || node.Decode(reflect.New(t).Interface()) != nil {
			add(node, fmt.Sprintf("%q: want %s", node.Value, want))
		}
	case reflect.String:
		if node.Kind != yaml.ScalarNode {
			add(node, "want a single value, not a list or section")
		}
	}
}

// yamlFields collects the YAML keys of struct t (inline structs
// included) with their types.
func yamlFields(t reflect.Type, fields map[string]reflect.Type, known *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			yamlFields(ft, fields, known)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
		*known = append(*known, name)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// parseStrict decodes data into out (a pointer to a struct): every
// unknown key, misplaced value and bad duration is reported together, as
// a *ParseError, before anything is decoded.
func parseStrict(data []byte, name string, out any) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return &ParseError{File: name, Problems: []Problem{yamlSyntax(err)}}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // an empty file: every default
	}
	var probs []Problem
	checkNode(doc.Content[0], reflect.TypeOf(out), "", &probs)
	if len(probs) > 0 {
		return &ParseError{File: name, Problems: probs}
	}
	if err := doc.Content[0].Decode(out); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			pe := &ParseError{File: name}
			for _, m := range te.Errors {
				pe.Problems = append(pe.Problems, yamlSyntax(errors.New(m)))
			}
			return pe
		}
		return fmt.Errorf("config %s: %w", name, err)
	}
	return nil
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlSyntax turns a YAML error into a Problem with its line.
func yamlSyntax(err error) Problem {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return Problem{Line: n, Path: "(yaml)", Msg: m[2]}
	}
	return Problem{Path: "(yaml)", Msg: strings.TrimPrefix(msg, "yaml: ")}
}
