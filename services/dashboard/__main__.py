from services.dashboard.app import run

run()
