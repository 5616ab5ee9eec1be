package client

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// checkHeaps runs amcheck's verify_heapam on every table, materialized view
// and TOAST table of db, where the installed amcheck has it (1.3, shipped
// with PostgreSQL 14 and later; PostgreSQL 13's amcheck checks btree
// indexes only). schema is amcheck's, quoted. A table with corruption
// fails the check and is listed with verify_heapam's first message.
func (d *drill) checkHeaps(ctx context.Context, conn *pgx.Conn, db, schema string) {
	name := "verify_heapam " + db
	var has bool
	if err := conn.QueryRow(ctx, `SELECT to_regprocedure($1) IS NOT NULL`,
		schema+".verify_heapam(regclass,boolean,boolean,text,bigint,bigint)").Scan(&has); err != nil {
		d.addCheck(name, err, "")
		return
	}
	if !has {
		return
	}
	rows, err := conn.Query(ctx, `SELECT c.oid::text, format('%I.%I', n.nspname, c.relname)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_am am ON am.oid = c.relam
		WHERE c.relkind IN ('r', 'm', 't') AND c.relpersistence <> 't' AND c.relispopulated AND am.amname = 'heap'
		ORDER BY 2`)
	var rels [][2]string
	if err == nil {
		rels, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
			var v [2]string
			return v, r.Scan(&v[0], &v[1])
		})
	}
	if err != nil {
		d.addCheck(name, err, "")
		return
	}
	var failed []string
	for _, rel := range rels {
		var n int
		var first *string
		err := conn.QueryRow(ctx, `SELECT count(*), min(msg) FROM `+schema+`.verify_heapam($1::regclass)`, rel[0]).Scan(&n, &first)
		switch {
		case err != nil && ctx.Err() != nil:
			d.addCheck(name, err, fmt.Sprintf("interrupted after %d of %d tables", len(failed), len(rels)))
			return
		case err != nil:
			failed = append(failed, rel[1]+": "+err.Error())
		case n > 0:
			failed = append(failed, fmt.Sprintf("%s: %d problem(s), e.g. %s", rel[1], n, *first))
		}
	}
	out := fmt.Sprintf("verify_heapam on %d tables", len(rels))
	if len(failed) > 0 {
		d.addCheck(name, fmt.Errorf("%d of %d tables failed", len(failed), len(rels)), out+"\n"+strings.Join(failed, "\n"))
		return
	}
	d.addCheck(name, nil, out+": all passed")
}
