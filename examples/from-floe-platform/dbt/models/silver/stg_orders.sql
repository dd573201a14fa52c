{{ config(materialized='table', schema='silver') }}
-- Orders: first deduplicate by order_id (lowest _row wins), then drop rows
-- whose amount is not a decimal and cancelled orders.
WITH first_records AS (
    SELECT *
    FROM {{ source('bronze', 'raw_orders') }}
    WHERE TRY_CAST(order_id AS BIGINT) IS NOT NULL
    {{ first_record_by('order_id') }}
)
SELECT
    CAST(order_id AS BIGINT)              AS order_id,
    TRY_CAST(customer_id AS BIGINT)       AS customer_id,
    TRY_CAST(order_date AS DATE)          AS order_date,
    {{ to_money('amount') }}    AS amount,
    status
FROM first_records
WHERE {{ to_money('amount') }} IS NOT NULL
  AND status IS DISTINCT FROM '{{ var("excluded_status") }}'
