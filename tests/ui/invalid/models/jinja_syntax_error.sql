{{ config(materialized='table') }}
SELECT *
FROM {{ source('bronze', 'raw_customers') }}
{% if var('only_eu', false) %}
WHERE region = 'EU'
