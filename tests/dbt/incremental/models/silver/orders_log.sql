{{ config(materialized='incremental', schema='silver') }}
-- Append-only: each run adds the orders that arrived since the last one.
SELECT {{ order_columns() }}
FROM {{ source('bronze', 'raw_orders') }}
WHERE CAST(order_id AS BIGINT) <= {{ var('last_order') }}
{% if is_incremental() %}
  AND CAST(order_id AS BIGINT) > (SELECT max(order_id) FROM {{ this }})
{% endif %}
