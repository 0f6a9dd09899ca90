from libs.runtime import run_service
from services.rollback_controller.app import build

run_service(build)
