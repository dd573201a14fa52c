{{ config(materialized='table') }}
SELECT c.*
FROM {{ source('bronze', 'raw_customers') }} AS c
JOIN {{ ref('stg_regions') }} AS r USING (region)
