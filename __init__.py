from . import controllers, models, report, wizard
from .hooks import _crm_sop_post_init, _crm_sop_uninstall
