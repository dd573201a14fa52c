{{ config(materialized='incremental', unique_key='order_date', schema='gold') }}
-- Merged by day: each run recomputes the last day it has seen and the new ones.
SELECT
    order_date,
    count(*)                              AS orders,
    CAST(sum(amount) AS DECIMAL(18, 2))   AS revenue
FROM {{ ref('orders_log') }}
{% if is_incremental() %}
WHERE order_date >= (SELECT max(order_date) FROM {{ this }})
{% endif %}
GROUP BY order_date
