{# dbt: config(schema='silver') means the schema `silver`, not `<target>_silver`.
   floe-host always reads it so (the step's layer); this macro makes dbt agree. #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
