{{ config(materialized='view', post_hook='GRANT SELECT ON {{ this }} TO analysts') }}
SELECT * FROM {{ source('bronze', 'raw_customers') }}
