{{ config(materialized='table', schema='silver') }}
-- Customers with a numeric id, emails normalised, one row per customer:
-- the first record of the file wins (lowest _row).
SELECT
    TRY_CAST(customer_id AS BIGINT)  AS customer_id,
    customer_name,
    lower(trim(email))               AS email,
    region,
    TRY_CAST(signup_date AS DATE)    AS signup_date
FROM {{ source('bronze', 'raw_customers') }}
WHERE TRY_CAST(customer_id AS BIGINT) IS NOT NULL
{{ first_record_by('customer_id') }}
