"""Modbus TCP device simulators (BESS, chargers, meters) backed by the twin's plant.

Run standalone: ``python -m simulators --scenario scenarios/hil.yaml --port 0``.
pymodbus is imported only here and in ``adapters/modbus``.
"""
