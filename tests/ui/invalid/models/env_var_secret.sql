SELECT *, '{{ env_var("AWS_SECRET_ACCESS_KEY") }}' AS leaked
FROM {{ source('bronze', 'raw_customers') }}
