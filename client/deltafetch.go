package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/walgate/walgate/client/basebackup"
	"github.com/walgate/walgate/gateway/protocol"
)

// maxChainLength bounds how far a restore follows DeltaFrom links (a loop
// in a damaged archive must not run forever).
const maxChainLength = 1000

// chainLink is one backup of a delta chain being restored.
type chainLink struct {
	d     protocol.BackupDetail
	fm    basebackup.FilesMetadata
	parts []string // its data tars (object paths), by number
}

// resolveChain finds every backup the delta r.d depends on, newest first,
// and reads each one's file list: a missing link, a foreign parent or an
// unreadable list fails here, before the restore writes anything.
func (r *restorer) resolveChain(ctx context.Context, s basebackup.Sentinel) ([]chainLink, error) {
	// The links first, from the catalog: a broken chain is found before
	// any object is read.
	var chain []chainLink
	d, sentinel := r.d, s
	seen := map[string]bool{}
	for {
		if seen[d.Name] || len(chain) >= maxChainLength {
			return nil, &Error{Kind: ErrIntegrity, Op: r.op, Message: fmt.Sprintf("the delta chain of %s loops or is longer than %d backups at %s", r.d.Name, maxChainLength, d.Name)}
		}
		seen[d.Name] = true
		objs, err := sortObjects(d.Files)
		if err != nil {
			return nil, &Error{Kind: ErrIntegrity, Op: r.op, Message: fmt.Sprintf("backup %s of the chain: %v", d.Name, err)}
		}
		for _, p := range objs.parts {
			if _, _, err := r.c.objectCodec(r.op, p, d.Files[p]); err != nil {
				return nil, err
			}
		}
		chain = append(chain, chainLink{d: d, parts: objs.parts})
		if !sentinel.IsDelta() {
			break
		}
		parent := sentinel.DeltaFrom
		pd, err := r.c.Backup(ctx, parent)
		if err != nil {
			var e *Error
			if errors.As(err, &e) && e.Kind == ErrNotFound {
				e.Op = r.op
				e.Message = fmt.Sprintf("backup %s is a delta of %s, which is not in the archive: the chain %s is broken and cannot be restored; nothing was written (restore a full backup or a delta with a complete chain, see backup-list)",
					d.Name, parent, chainText(chain, parent))
			}
			return nil, err
		}
		ps, err := basebackup.ParseSentinel(strings.NewReader(string(pd.Sentinel)))
		if err != nil {
			return nil, &Error{Kind: ErrIntegrity, Op: r.op, Message: fmt.Sprintf("the sentinel of %s (parent of %s) does not parse", parent, d.Name), Err: err}
		}
		if ps.SystemIdentifier != nil && s.SystemIdentifier != nil && *ps.SystemIdentifier != *s.SystemIdentifier {
			return nil, &Error{Kind: ErrIntegrity, Op: r.op, Message: fmt.Sprintf("%s (parent of %s) is from another database system (system identifier %d, not %d)", parent, d.Name, *ps.SystemIdentifier, *s.SystemIdentifier)}
		}
		d, sentinel = pd, ps
	}
	// Then each link's file list.
	for i := range chain {
		l := &chain[i]
		if _, ok := l.d.Files["files_metadata.json"]; !ok {
			return nil, &Error{Kind: ErrIntegrity, Op: r.op, Message: fmt.Sprintf("backup %s of the chain has no files_metadata.json: its files cannot be told apart from increments", l.d.Name)}
		}
		if err := r.fetchObject(ctx, &l.d, "files_metadata.json", func(rd io.Reader) error {
			var err error
			l.fm, err = basebackup.ParseFilesMetadata(rd)
			return err
		}); err != nil {
			return nil, err
		}
	}
	return chain, nil
}

func chainText(chain []chainLink, missing string) string {
	var b strings.Builder
	for _, l := range chain {
		b.WriteString(l.d.Name + " -> ")
	}
	return b.String() + missing + " (missing)"
}

// applyChain extracts the chain's data tars, those of every backup at
// once (WALGATE_DOWNLOAD_CONCURRENCY in all): the newest backup's, and of
// each older one only the tars holding files or pages no newer backup
// holds whole. basebackup.ChainRestore lets the newest version of every
// page win whatever order the tars arrive in.
func (r *restorer) applyChain(ctx context.Context, chain []chainLink, xopts basebackup.ExtractOptions) error {
	cr := basebackup.NewChainRestore(chain[0].fm)
	type chainPart struct {
		d    *protocol.BackupDetail
		part string
		opts basebackup.ExtractOptions
	}
	var jobs []chainPart
	for i := range chain {
		l := &chain[i]
		lo := xopts
		lo.Chain = cr.Level(l.fm, i == 0)
		parts := l.parts
		if i > 0 {
			parts = nil
			for _, object := range lo.Chain.Tars() {
				p := basebackup.TarFolder + "/" + object
				if _, ok := l.d.Files[p]; !ok {
					return &Error{Kind: ErrIntegrity, Op: r.op, Message: fmt.Sprintf("backup %s lists %s in files_metadata.json but has no such object", l.d.Name, p)}
				}
				parts = append(parts, p)
			}
			// What is not fetched is not counted against the progress.
			for _, p := range l.parts {
				if !slices.Contains(parts, p) {
					r.prog.Add(l.d.Files[p].Size)
				}
			}
		}
		for _, p := range parts {
			jobs = append(jobs, chainPart{d: &l.d, part: p, opts: lo})
		}
	}
	n := r.opts.Concurrency
	if n <= 0 {
		n = DefaultDownloadConcurrency
	}
	err := inParallel(ctx, n, len(jobs), func(ctx context.Context, i int) error {
		j := jobs[i]
		return r.fetchObject(ctx, j.d, j.part, func(rd io.Reader) error {
			_, err := basebackup.ExtractTar(rd, r.dir, j.opts)
			return err
		})
	})
	if err == nil && ctx.Err() != nil {
		return &Error{Kind: ErrUnavailable, Op: r.op, Message: "interrupted", Err: ctx.Err()}
	}
	if err != nil {
		return err
	}
	if miss := cr.Missing(); len(miss) > 0 {
		return &Error{Kind: ErrIntegrity, Op: r.op, Message: fmt.Sprintf("the chain of %s is incomplete: %d file(s) are held whole by no backup of it, e.g. %s", r.d.Name, len(miss), strings.Join(miss[:min(3, len(miss))], ", "))}
	}
	return nil
}
