package client

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// inParallel runs job(ctx, i) for every i in [0, n), at most limit at
// once. The first error cancels the context the others run under, jobs
// not yet started then do not start, and it is the error returned. A ctx
// cancelled while no job failed is left to the caller to report.
func inParallel(ctx context.Context, limit, n int, job func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(limit, 1))
	for i := range n {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if gctx.Err() != nil {
				return nil // another job failed, or ctx ended
			}
			return job(gctx, i)
		})
	}
	return g.Wait()
}
