{{ config(materialized='table', schema='gold', tags=['finance']) }}
-- Revenue and order count per day and region.
SELECT
    o.order_date,
    c.region,
    CAST(sum(o.amount) AS DECIMAL(18, 2)) AS revenue,
    count(*)                              AS orders
FROM {{ ref('stg_orders') }} AS o
JOIN {{ ref('stg_customers') }} AS c ON o.customer_id = c.customer_id
GROUP BY o.order_date, c.region
ORDER BY o.order_date, c.region
