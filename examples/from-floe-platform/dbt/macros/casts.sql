{# A money column as text, cast to a decimal; NULL when it is not a number. #}
{% macro to_money(column, precision=12) -%}
    TRY_CAST({{ column }} AS DECIMAL({{ precision }}, 2))
{%- endmacro %}

{# The first record of each key of a bronze table, by file order (`_row`). #}
{% macro first_record_by(key) -%}
    QUALIFY row_number() OVER (PARTITION BY TRY_CAST({{ key }} AS BIGINT) ORDER BY _row) = 1
{%- endmacro %}
