"""All ORM models, one module per aggregate; import a model from its module (``service.db.models.mirror`` ...).
Importing this package registers every table on ``Base.metadata`` (Alembic's autogenerate and the migration test rely
on it)."""

from service.db.models import api_key, audit, campaign, credential, mirror, monitoring, notifications, tenant

__all__ = ["api_key", "audit", "campaign", "credential", "mirror", "monitoring", "notifications", "tenant"]
