package main

// A schema is one test binary holding every mutant of a package at once,
// each behind a switch read from the environment (WALGATE_MUTANT=N turns
// mutant N on; unset or 0, the code is the original). The package is
// compiled and linked once, so a mutant costs only the run of its tests,
// where an overlay costs a compile and a link of the test binary each
// time (which, for a package whose tests link the cloud SDKs, is most of
// the time on 2 cores).
//
// Each mutated operator is rewritten in the source text, keeping every
// operand's text (and the mutations inside it) as it is:
//
//	a > b    ->  func() bool { switch walgateMutantID { case 3: return a >= b; case 4: return a <= b }; return a > b }()
//	x++      ->  if walgateMutantID == 7 { x-- } else { x++ }
//	break    ->  if walgateMutantID == 9 { continue } else { break }
//
// so one alternative is evaluated, once, as in the mutant itself. A
// constant expression cannot hold a function call and is left to the
// overlay; so is any mutant whose rewrite the compiler refuses (a bool of
// a named type, a loop that was terminating, ...): the build is retried
// without the mutants the errors point at, and those are tested one by
// one with an overlay, as before.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// schemaEnv names the mutant a schema binary runs with.
const schemaEnv = "WALGATE_MUTANT"

// A schema is a built test binary and the mutants it holds, by index in
// the mutant list (ID = index + 1).
type schema struct {
	bin  string
	dir  string // the package directory, where the tests run
	held map[int]bool
}

// site is one rewritten node and the mutants at it.
type site struct {
	node     ast.Node
	start    int // byte offsets of the node in its file
	end      int
	ids      []int // mutant IDs at this node
	typ      string
	children []*site
	// output range of the rendered site, for mapping compiler errors.
	outStart, outEnd int
}

// buildSchema writes and compiles pkg's schema. Mutants it cannot hold
// are left out (held[i] false); an error means no schema at all.
func buildSchema(pkg string, mutants []Mutant, tmp string, logf func(string, ...any)) (*schema, error) {
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}\t{{.Name}}\t{{join .GoFiles \" \"}}\t{{len .CgoFiles}}", pkg).Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s: %v", pkg, err)
	}
	f := strings.Split(strings.TrimSpace(string(out)), "\t")
	if len(f) != 4 || f[3] != "0" {
		return nil, fmt.Errorf("go list %s: unexpected %q (cgo packages have no schema)", pkg, out)
	}
	dir, name, files := f[0], f[1], strings.Fields(f[2])
	exports, err := exportData(pkg)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	var parsed []*ast.File
	srcs := map[string][]byte{}
	for _, fn := range files {
		path := filepath.Join(dir, fn)
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		af, err := parser.ParseFile(fset, path, src, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		parsed = append(parsed, af)
		srcs[fn] = src
	}
	info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}}
	conf := types.Config{Importer: importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		if p, ok := exports[path]; ok && p != "" {
			return os.Open(p)
		}
		return nil, fmt.Errorf("no export data for %s", path)
	})}
	tpkg, err := conf.Check(pkg, fset, parsed, info)
	if err != nil {
		return nil, fmt.Errorf("type-checking %s: %v", pkg, err)
	}

	held := map[int]bool{}
	for i := range mutants {
		held[i] = true
	}
	for attempt := 0; ; attempt++ {
		rendered := map[string]renderedFile{} // by file name, for errors
		overlay := map[string]string{}
		placed := map[int]bool{}
		for i, af := range parsed {
			fn := files[i]
			src := srcs[fn]
			sites := findSites(fset, af, mutants, held, fn, info, tpkg, logf)
			if len(sites) == 0 {
				continue
			}
			var b bytes.Buffer
			pos := 0
			for _, s := range sites {
				b.Write(src[pos:s.start])
				render(&b, src, s, mutants)
				pos = s.end
			}
			b.Write(src[pos:])
			mpath := filepath.Join(tmp, "schema-"+fn)
			if err := os.WriteFile(mpath, b.Bytes(), 0o644); err != nil {
				return nil, err
			}
			overlay[filepath.Join(dir, fn)] = mpath
			rf := renderedFile{src: b.Bytes(), sites: flatten(sites)}
			rendered[fn] = rf
			for _, s := range rf.sites {
				for _, id := range s.ids {
					placed[id-1] = true
				}
			}
		}
		// A mutant no rewrite holds (a constant expression, a for
		// clause's post statement) is tested with an overlay.
		for i := range held {
			held[i] = held[i] && placed[i]
		}
		sw := filepath.Join(tmp, "schema-switch.go")
		code := fmt.Sprintf("package %s\n\nimport (\n\t\"os\"\n\t\"strconv\"\n)\n\n// walgateMutantID is the mutant this binary runs: $%s, 0 for none.\nvar walgateMutantID = func() int { n, _ := strconv.Atoi(os.Getenv(%q)); return n }()\n", name, schemaEnv, schemaEnv)
		if err := os.WriteFile(sw, []byte(code), 0o644); err != nil {
			return nil, err
		}
		overlay[filepath.Join(dir, "zz_walgate_mutant_switch.go")] = sw
		ob, _ := json.Marshal(map[string]any{"Replace": overlay})
		opath := filepath.Join(tmp, "schema-overlay.json")
		if err := os.WriteFile(opath, ob, 0o644); err != nil {
			return nil, err
		}
		bin := filepath.Join(tmp, "schema.test")
		build := exec.Command("go", "test", "-c", "-vet=off", "-overlay", opath, "-o", bin, pkg)
		msg, err := build.CombinedOutput()
		if err == nil {
			return &schema{bin: bin, dir: dir, held: held}, nil
		}
		dropped := dropAtErrors(string(msg), rendered, held)
		if dropped == 0 {
			// An error outside every rewrite ("missing return" after a
			// loop that a rewritten break made non-terminating): leave
			// the statement rewrites of the files named to overlays.
			dropped = dropStatements(string(msg), rendered, held)
		}
		if dropped == 0 || attempt >= 20 {
			return nil, fmt.Errorf("building the schema of %s: %v\n%s", pkg, err, msg)
		}
		logf("mutant: schema of %s: %d mutants left to overlays after compiler errors\n", pkg, dropped)
	}
}

// exportData maps every dependency of pkg to its compiled export data.
func exportData(pkg string) (map[string]string, error) {
	out, err := exec.Command("go", "list", "-export", "-deps", "-f", "{{.ImportPath}}\t{{.Export}}", pkg).Output()
	if err != nil {
		return nil, fmt.Errorf("go list -export %s: %v", pkg, err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if k, v, ok := strings.Cut(line, "\t"); ok {
			m[k] = v
		}
	}
	return m, nil
}

// findSites returns the outermost rewritten nodes of one file, in source
// order, each with the rewritten nodes inside it as children.
func findSites(fset *token.FileSet, af *ast.File, mutants []Mutant, held map[int]bool, fn string, info *types.Info, tpkg *types.Package, logf func(string, ...any)) []*site {
	byPos := map[[2]int][]int{} // line, col -> mutant IDs
	for i, m := range mutants {
		if held[i] && filepath.Clean(m.File) == fn {
			byPos[[2]int{m.Line, m.Col}] = append(byPos[[2]int{m.Line, m.Col}], i+1)
		}
	}
	if len(byPos) == 0 {
		return nil
	}
	qual := func(p *types.Package) string {
		if p == tpkg {
			return ""
		}
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if path == p.Path() {
				if imp.Name != nil {
					return imp.Name.Name
				}
				return p.Name()
			}
		}
		return p.Name() // not imported here: the compiler refuses it and the mutant goes to an overlay
	}
	var all []*site
	var forPosts = map[ast.Stmt]bool{}
	ast.Inspect(af, func(n ast.Node) bool {
		if fs, ok := n.(*ast.ForStmt); ok && fs.Post != nil {
			forPosts[fs.Post] = true
		}
		var at token.Pos
		var typ string
		switch x := n.(type) {
		case *ast.BinaryExpr:
			at = x.OpPos
			tv := info.Types[x]
			if tv.Value != nil || tv.Type == nil {
				return true // constant: no function call allowed
			}
			typ = typeName(tv.Type, qual)
		case *ast.UnaryExpr:
			if x.Op != token.SUB {
				return true
			}
			at = x.OpPos
			tv := info.Types[x]
			if tv.Value != nil || tv.Type == nil {
				return true
			}
			typ = typeName(tv.Type, qual)
		case *ast.IncDecStmt:
			if forPosts[x] {
				return true // a for clause's post statement cannot be an if
			}
			at = x.TokPos
		case *ast.AssignStmt:
			if forPosts[x] || x.Tok == token.ASSIGN || x.Tok == token.DEFINE {
				return true
			}
			at = x.TokPos
		case *ast.BranchStmt:
			if x.Label != nil {
				return true
			}
			at = x.TokPos
		default:
			return true
		}
		p := fset.Position(at)
		ids := byPos[[2]int{p.Line, p.Column}]
		if len(ids) == 0 {
			return true
		}
		all = append(all, &site{node: n, start: fset.Position(n.Pos()).Offset, end: fset.Position(n.End()).Offset, ids: ids, typ: typ})
		return true
	})
	// Nest: ast.Inspect visits parents before children, in source order.
	var top []*site
	var stack []*site
	for _, s := range all {
		for len(stack) > 0 && stack[len(stack)-1].end <= s.start {
			stack = stack[:len(stack)-1]
		}
		if len(stack) == 0 {
			top = append(top, s)
		} else {
			stack[len(stack)-1].children = append(stack[len(stack)-1].children, s)
		}
		stack = append(stack, s)
	}
	return top
}

// typeName spells t for the file, untyped bool as bool.
func typeName(t types.Type, qual types.Qualifier) string {
	if b, ok := t.(*types.Basic); ok && b.Info()&types.IsUntyped != 0 {
		switch b.Kind() {
		case types.UntypedBool:
			return "bool"
		case types.UntypedInt, types.UntypedRune:
			return "int"
		case types.UntypedFloat:
			return "float64"
		case types.UntypedString:
			return "string"
		}
	}
	return types.TypeString(t, qual)
}

// text renders src[from:to] with the sites inside it rendered too.
func text(b *bytes.Buffer, src []byte, from, to int, children []*site, mutants []Mutant) {
	pos := from
	for _, c := range children {
		b.Write(src[pos:c.start])
		render(b, src, c, mutants)
		pos = c.end
	}
	b.Write(src[pos:to])
}

// render writes a site's switched form.
func render(b *bytes.Buffer, src []byte, s *site, mutants []Mutant) {
	s.outStart = b.Len()
	defer func() { s.outEnd = b.Len() }()
	// orig writes the node's own text (children rendered), with the
	// operator at opOff replaced by op when op is not "".
	orig := func(opOff int, opLen int, op string) {
		if op == "" {
			text(b, src, s.start, s.end, s.children, mutants)
			return
		}
		var left, right []*site
		for _, c := range s.children {
			if c.end <= opOff {
				left = append(left, c)
			} else {
				right = append(right, c)
			}
		}
		text(b, src, s.start, opOff, left, mutants)
		b.WriteString(op)
		text(b, src, opOff+opLen, s.end, right, mutants)
	}
	var opOff, opLen int
	var tok token.Token
	switch x := s.node.(type) {
	case *ast.BinaryExpr:
		tok = x.Op
	case *ast.UnaryExpr:
		tok = x.Op
	case *ast.IncDecStmt:
		tok = x.Tok
	case *ast.AssignStmt:
		tok = x.Tok
	case *ast.BranchStmt:
		tok = x.Tok
	}
	m0 := mutants[s.ids[0]-1]
	// The operator's offset: its column on its line, from the node's start.
	opOff = offsetOf(src, m0.Line, m0.Col)
	opLen = len(tok.String())
	alt := func(id int) string { return replacements[mutants[id-1].Type][tok].String() }
	switch s.node.(type) {
	case *ast.BinaryExpr, *ast.UnaryExpr:
		fmt.Fprintf(b, "func() %s { switch walgateMutantID {", s.typ)
		for _, id := range s.ids {
			fmt.Fprintf(b, " case %d: return ", id)
			orig(opOff, opLen, alt(id))
			b.WriteString(";")
		}
		b.WriteString(" }; return ")
		orig(0, 0, "")
		b.WriteString(" }()")
	default: // statements
		for _, id := range s.ids {
			fmt.Fprintf(b, "if walgateMutantID == %d { ", id)
			orig(opOff, opLen, alt(id))
			b.WriteString(" } else ")
		}
		b.WriteString("{ ")
		orig(0, 0, "")
		b.WriteString(" }")
	}
}

// offsetOf is the byte offset of line:col (1-based, col in bytes).
func offsetOf(src []byte, line, col int) int {
	off := 0
	for l := 1; l < line; l++ {
		i := bytes.IndexByte(src[off:], '\n')
		if i < 0 {
			return len(src)
		}
		off += i + 1
	}
	return off + col - 1
}

func flatten(sites []*site) []*site {
	var out []*site
	for _, s := range sites {
		out = append(out, s)
		out = append(out, flatten(s.children)...)
	}
	return out
}

var compileError = regexp.MustCompile(`(?m)^(?:\./)?(\S+?\.go):(\d+):(\d+): `)

// renderedFile is a file's schema text and its sites, with their ranges
// in that text.
type renderedFile struct {
	src   []byte
	sites []*site
}

// dropAtErrors takes out of the schema the mutants whose rewritten text
// holds a position the compiler complained about, innermost first, and
// returns how many it took out. The compiler names an overlaid file by
// its original path, with positions in the overlay's text.
func dropAtErrors(msg string, rendered map[string]renderedFile, held map[int]bool) int {
	dropped := 0
	for _, m := range compileError.FindAllStringSubmatch(msg, -1) {
		line, _ := strconv.Atoi(m[2])
		col, _ := strconv.Atoi(m[3])
		for fn, rf := range rendered {
			if fn != errorFile(m[1]) {
				continue
			}
			off := offsetOf(rf.src, line, col)
			var hit []*site
			for _, s := range rf.sites {
				if s.outStart <= off && off < s.outEnd {
					hit = append(hit, s)
				}
			}
			// The smallest site holding the error is the one to blame.
			sort.Slice(hit, func(i, j int) bool { return hit[i].outEnd-hit[i].outStart < hit[j].outEnd-hit[j].outStart })
			if len(hit) > 0 {
				for _, id := range hit[0].ids {
					if held[id-1] {
						held[id-1] = false
						dropped++
					}
				}
			}
		}
	}
	return dropped
}

// dropStatements handles an error outside every rewrite ("missing
// return" at the end of a function whose loop a rewritten break or
// continue made non-terminating): it takes out of the schema the nearest
// rewritten break or continue before the error, else the nearest other
// statement rewrite, and returns how many mutants it took out.
func dropStatements(msg string, rendered map[string]renderedFile, held map[int]bool) int {
	dropped := 0
	for _, m := range compileError.FindAllStringSubmatch(msg, -1) {
		rf, ok := rendered[errorFile(m[1])]
		if !ok {
			continue
		}
		line, _ := strconv.Atoi(m[2])
		col, _ := strconv.Atoi(m[3])
		off := offsetOf(rf.src, line, col)
		for _, branches := range []bool{true, false} {
			var near *site
			for _, s := range rf.sites {
				switch s.node.(type) {
				case *ast.BinaryExpr, *ast.UnaryExpr:
					continue
				case *ast.BranchStmt:
				default:
					if branches {
						continue
					}
				}
				live := false
				for _, id := range s.ids {
					live = live || held[id-1]
				}
				if live && s.outEnd <= off && (near == nil || s.outEnd > near.outEnd) {
					near = s
				}
			}
			if near != nil {
				for _, id := range near.ids {
					if held[id-1] {
						held[id-1] = false
						dropped++
					}
				}
				break
			}
		}
	}
	return dropped
}

// errorFile is the package file a compiler error names: the schema's copy
// (tmp/schema-NAME.go) or, depending on the go version, the original.
func errorFile(path string) string {
	return strings.TrimPrefix(filepath.Base(path), "schema-")
}
