"""SQLAlchemy 2.x typed models, one module per concept. Importing this package registers them all
on ``Base.metadata`` (Alembic's autogenerate and ``create_all`` rely on that)."""

from models.base import Base, utcnow
from models.content import (
    BodyFormat,
    ContentPage,
    DashboardWidget,
    EmailTemplate,
    OutboxAttachment,
    OutboxMessage,
    OutboxStatus,
)
from models.enforcement import (
    Boot,
    BootAssignment,
    BootStatus,
    OffenceType,
    Violation,
    ViolationItem,
    ViolationStatus,
)
from models.lots import (
    Lot,
    LotGroup,
    LotZone,
    LotZoneSchedule,
    MistallLot,
    PermitKind,
    PermitProduct,
    Pricing,
)
from models.occupancy import DeviceKind, IngestDeadLetter, OccupancySnapshot, OccupancySource, SensingDevice
from models.payments import (
    Cart,
    CartItem,
    CartItemKind,
    CartStatus,
    Payment,
    PaymentAllocation,
    PaymentStatus,
    Refund,
)
from models.permits import PayStationRecord, Permit, PermitSource, PermitStatus, PermitVehicle
from models.system import ApiKey, AuditLog, SystemSetting, SystemTask, TaskOutcome, TaskRun
from models.users import AuthSource, Role, User, UserType, Vehicle

__all__ = [
    "ApiKey", "AuditLog", "AuthSource", "Base", "BodyFormat", "Boot", "BootAssignment", "BootStatus",
    "Cart", "CartItem", "CartItemKind", "CartStatus", "ContentPage", "DashboardWidget", "DeviceKind",
    "EmailTemplate", "IngestDeadLetter", "Lot", "LotGroup", "LotZone", "LotZoneSchedule", "MistallLot",
    "OccupancySnapshot", "OccupancySource", "OffenceType", "OutboxAttachment", "OutboxMessage",
    "OutboxStatus", "PayStationRecord", "Payment", "PaymentAllocation", "PaymentStatus", "Permit",
    "PermitKind", "PermitProduct", "PermitSource", "PermitStatus", "PermitVehicle", "Pricing", "Refund",
    "Role", "SensingDevice", "SystemSetting", "SystemTask", "TaskOutcome", "TaskRun", "User", "UserType",
    "Vehicle", "Violation", "ViolationItem", "ViolationStatus", "utcnow",
]
