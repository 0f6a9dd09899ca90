from libs.runtime import run_service
from services.deployer.app import build

run_service(build)
