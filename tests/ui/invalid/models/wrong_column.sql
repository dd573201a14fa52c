{{ config(materialized='table') }}
-- `day_no` is not a column of silver.days (it has day_number).
SELECT day_no // 7 AS week, count(*) AS days
FROM {{ ref('days') }}
GROUP BY ALL
