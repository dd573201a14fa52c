SELECT * FROM {{ source('bronze', 'raw_customers') }}
WHERE {{ region_filter('region') }}
