{{ config(materialized='table', schema='gold', tags=['finance']) }}
-- Per customer: order count, total amount and first/last order date.
SELECT
    o.customer_id,
    c.region,
    count(*)                              AS order_count,
    CAST(sum(o.amount) AS DECIMAL(18, 2)) AS total_amount,
    min(o.order_date)                     AS first_order_date,
    max(o.order_date)                     AS last_order_date
FROM {{ ref('stg_orders') }} AS o
JOIN {{ ref('stg_customers') }} AS c ON o.customer_id = c.customer_id
GROUP BY o.customer_id, c.region
ORDER BY o.customer_id
