"""All ORM models, one module per aggregate. Importing this package registers every table on ``Base.metadata``
(Alembic's autogenerate and the migration test rely on it)."""

from service.db.models.tenant import Tenant, TenantStatus

__all__ = ["Tenant", "TenantStatus"]
