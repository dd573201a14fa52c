-- Orders: first deduplicate by order_id (lowest _row wins), then drop rows
-- whose amount is not a decimal and cancelled orders. An order whose first
-- record is malformed or cancelled is dropped even if a later duplicate is valid.
WITH first_records AS (
    SELECT *
    FROM bronze.raw_orders
    WHERE TRY_CAST(order_id AS BIGINT) IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY TRY_CAST(order_id AS BIGINT) ORDER BY _row) = 1
)
SELECT
    CAST(order_id AS BIGINT)              AS order_id,
    TRY_CAST(customer_id AS BIGINT)       AS customer_id,
    TRY_CAST(order_date AS DATE)          AS order_date,
    TRY_CAST(amount AS DECIMAL(12, 2))    AS amount,
    status
FROM first_records
WHERE TRY_CAST(amount AS DECIMAL(12, 2)) IS NOT NULL
  AND status IS DISTINCT FROM 'cancelled'
