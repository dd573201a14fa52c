-- Customers with a numeric id, emails normalised, one row per customer:
-- the first record of the file wins (lowest _row).
SELECT
    TRY_CAST(customer_id AS BIGINT)  AS customer_id,
    customer_name,
    lower(trim(email))               AS email,
    region,
    TRY_CAST(signup_date AS DATE)    AS signup_date
FROM bronze.raw_customers
WHERE TRY_CAST(customer_id AS BIGINT) IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY TRY_CAST(customer_id AS BIGINT) ORDER BY _row) = 1
