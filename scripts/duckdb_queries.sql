-- The analyst's alternative: load the export into DuckDB and ask the three questions.
-- {FILES} is replaced by the reader call for the export (read_csv / read_json over its event files),
-- {DIR} by the export directory (for roster.csv and credentials.csv).

CREATE TEMP TABLE e AS
SELECT
  CASE WHEN regexp_full_match("timestamp", '[0-9]+')
       THEN to_timestamp(CAST("timestamp" AS BIGINT) / 1000.0)
       ELSE CAST("timestamp" AS TIMESTAMPTZ) END AS ts,
  event_type, principal, credential_id, token_id, source_ip, target_account,
  coalesce(lower(outcome), 'success') AS outcome
FROM {FILES};

CREATE TEMP TABLE roster AS
SELECT employee_id, CAST(termination_date AS DATE) + INTERVAL 1 DAY AS access_ends
FROM read_csv('{DIR}/roster.csv', all_varchar = true) WHERE termination_date IS NOT NULL;

CREATE TEMP TABLE creds AS
SELECT credential_id, owner, CAST(revoked AS DATE) + INTERVAL 1 DAY + INTERVAL 48 HOUR AS revoked_until
FROM read_csv('{DIR}/credentials.csv', all_varchar = true);

-- 1. Credential or identity used after offboarding or revocation.
SELECT 'credential' AS kind, c.credential_id AS id, count(*) AS events,
       count(DISTINCT e.target_account) AS accounts, min(e.ts) AS first_seen, max(e.ts) AS last_seen
FROM e JOIN creds c USING (credential_id) LEFT JOIN roster r ON r.employee_id = c.owner
WHERE e.outcome = 'success' AND (e.ts > c.revoked_until OR e.ts >= r.access_ends)
GROUP BY 1, 2
UNION ALL
SELECT 'principal', e.principal, count(*), count(DISTINCT e.target_account), min(e.ts), max(e.ts)
FROM e JOIN roster r ON r.employee_id = e.principal
WHERE e.outcome = 'success' AND e.ts >= r.access_ends
GROUP BY 1, 2
ORDER BY accounts DESC;

-- 2. Access with tokens the issuer never issued, per signing key.
SELECT a.credential_id, count(*) AS accesses, count(DISTINCT a.token_id) AS tokens,
       count(DISTINCT a.target_account) AS accounts
FROM e a
ANTI JOIN (SELECT DISTINCT token_id FROM e WHERE event_type = 'token_issued') i USING (token_id)
WHERE a.event_type = 'access' AND a.token_id IS NOT NULL
GROUP BY 1 ORDER BY accesses DESC;

-- 3. Distinct accounts per entity (key, principal, source address), top 20 each.
SELECT * FROM (
  SELECT 'credential' AS kind, credential_id AS id, count(DISTINCT target_account) AS accounts
  FROM e WHERE event_type = 'access' AND credential_id IS NOT NULL GROUP BY 1, 2 ORDER BY accounts DESC LIMIT 20)
UNION ALL SELECT * FROM (
  SELECT 'principal', principal, count(DISTINCT target_account) AS accounts
  FROM e WHERE event_type = 'access' AND principal IS NOT NULL GROUP BY 1, 2 ORDER BY accounts DESC LIMIT 20)
UNION ALL SELECT * FROM (
  SELECT 'source_ip', source_ip, count(DISTINCT target_account) AS accounts
  FROM e WHERE event_type = 'access' AND source_ip IS NOT NULL GROUP BY 1, 2 ORDER BY accounts DESC LIMIT 20);
