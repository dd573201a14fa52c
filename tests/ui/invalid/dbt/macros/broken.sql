{% macro region_filter(column) -%}
    {{ column }} IN ({{ var('regions') | join(', ') }})
{%- endmacro %}
