-- A singular data test, as dbt runs them: every row it returns is a failure.
-- It reads one model, so it runs on daily_revenue's output before its commit.
SELECT order_date, region, revenue
FROM {{ ref('daily_revenue') }}
WHERE revenue < 0
