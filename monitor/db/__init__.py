"""The database: schema, migrations, engine, stored inputs and results, claims."""
