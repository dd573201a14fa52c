-- Each customer's order count in gold equals its orders in silver. It reads
-- two models, so it runs on the later one (customer_totals) before its
-- commit, against the committed stg_orders.
{{ config(severity='error') }}
SELECT t.customer_id, t.order_count, count(o.order_id) AS orders_in_silver
FROM {{ ref('customer_totals') }} AS t
LEFT JOIN {{ ref('stg_orders') }} AS o ON o.customer_id = t.customer_id
GROUP BY t.customer_id, t.order_count
HAVING t.order_count <> count(o.order_id)
