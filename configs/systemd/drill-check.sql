-- Run by 'walgate-client drill --check-sql' against the restored copy, after
-- recovery and the built-in checks. Any error fails the drill, and the
-- error text is in the drill's report. Replace these with queries that
-- prove the data your application needs is there and recent.

-- The restored cluster answers and has databases to connect to.
SELECT 1 / (count(*) > 0)::int AS databases FROM pg_database WHERE datallowconn;

-- Example: fail when the newest order is older than the backup schedule allows.
-- SELECT 1 / (max(created_at) > now() - interval '2 days')::int FROM orders;
