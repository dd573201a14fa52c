-- Names a model that does not exist.
SELECT * FROM {{ ref('stg_customer') }} WHERE customer_id IS NULL
