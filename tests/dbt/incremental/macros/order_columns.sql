{% macro order_columns() -%}
    CAST(order_id AS BIGINT) AS order_id,
    CAST(order_date AS DATE) AS order_date,
    CAST(amount AS DECIMAL(12, 2)) AS amount
{%- endmacro %}
