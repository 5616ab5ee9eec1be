package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/walgate/walgate/lifecycle"
	"github.com/walgate/walgate/lifecycle/apply"
)

// uiLifecycleSteps is how many steps of the plan the page lists.
const uiLifecycleSteps = 300

// uiPlanFor is how long the lifecycle page reuses a dry run. A run holds
// the executor's one-run lock, which scheduled runs and retention
// deletions need too: an open, auto-refreshing page must not keep taking
// it.
const uiPlanFor = 10 * time.Minute

// uiPlanCache is the lifecycle page's last dry run.
type uiPlanCache struct {
	mu  sync.Mutex
	res apply.Result
	err error
	at  time.Time
}

// plan returns a dry run no older than uiPlanFor, running one when there
// is none. A busy executor is not cached.
func (pc *uiPlanCache) plan(ctx context.Context, lc *apply.Executor, now time.Time) (apply.Result, error) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if !pc.at.IsZero() && now.Sub(pc.at) < uiPlanFor {
		return pc.res, pc.err
	}
	res, err := lc.Run(ctx, apply.Options{}, now)
	if errors.Is(err, apply.ErrBusy) || ctx.Err() != nil {
		return res, err
	}
	pc.res, pc.err, pc.at = res, err, now
	return res, err
}

type uiLifecycleData struct {
	Now       time.Time
	PlannedAt time.Time
	Schedule  string // when the gateway runs the plan by itself
	Busy      bool   // a run was in progress: no plan shown
	Error     string
	Plan      apply.Result
	Steps     []apply.Step // at most uiLifecycleSteps
	MoreSteps int
	Classes   []uiClassRow
	Before    string // monthly cost
	After     string
	Saving    string
	Moves     int
	Deletes   int
}

// uiClassRow is stored bytes of one class before and after the plan.
type uiClassRow struct {
	Class         string
	Before, After string
	Delta         string
}

// uiLifecycle shows what the groups' lifecycle policies would do now: a
// dry run of the planner (never applied from here), storage by class and
// the monthly cost before and after.
func (s *Server) uiLifecycle(c *fiber.Ctx) error {
	t, ok, err := s.uiAuth(c)
	if !ok {
		return err
	}
	if err := fleetWide(t, "the lifecycle page"); err != nil {
		return err
	}
	now := time.Now()
	d := uiLifecycleData{Now: now, Schedule: "never by itself: only 'walgate lifecycle plan|apply' runs it (lifecycle.interval is 0)"}
	if l := s.cfg.Lifecycle; l.Interval > 0 {
		mode := "planned and logged only (lifecycle.apply is false)"
		if l.Apply {
			mode = "applied"
		}
		d.Schedule = fmt.Sprintf("every %s, %s", l.Interval, mode)
	}
	res, err := s.uiPlan.plan(c.UserContext(), s.lc, now)
	switch {
	case errors.Is(err, apply.ErrBusy):
		d.Busy = true
		return s.render(c, "lifecycle.html", d)
	case err != nil:
		d.Error = err.Error()
	}
	d.Plan, d.PlannedAt = res, res.Time
	d.Steps = res.Steps
	if len(d.Steps) > uiLifecycleSteps {
		d.Steps, d.MoreSteps = d.Steps[:uiLifecycleSteps], len(d.Steps)-uiLifecycleSteps
	}
	for _, st := range res.Steps {
		if st.Kind == lifecycle.Delete {
			d.Deletes += st.Count
		} else {
			d.Moves += st.Count
		}
	}
	before, after := res.Plan.Before, res.Plan.After
	for _, cl := range lifecycle.Classes {
		b, a := before.Bytes[cl], after.Bytes[cl]
		d.Classes = append(d.Classes, uiClassRow{Class: string(cl), Before: gib(b), After: gib(a), Delta: signedGiB(a - b)})
	}
	if before.Unknown > 0 || after.Unknown > 0 {
		d.Classes = append(d.Classes, uiClassRow{Class: "unknown (unpriced)", Before: gib(before.Unknown), After: gib(after.Unknown),
			Delta: signedGiB(after.Unknown - before.Unknown)})
	}
	d.Before, d.After = fmt.Sprintf("%.2f", before.Monthly), fmt.Sprintf("%.2f", after.Monthly)
	d.Saving = fmt.Sprintf("%.2f", before.Monthly-after.Monthly)
	return s.render(c, "lifecycle.html", d)
}

// gib formats a class's bytes: GiB from 1 GiB up, else MiB.
func gib(n int64) string {
	if n >= 1<<30 || n <= -(1<<30) {
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func signedGiB(n int64) string {
	if n == 0 {
		return "="
	}
	if n > 0 {
		return "+" + gib(n)
	}
	return gib(n)
}
