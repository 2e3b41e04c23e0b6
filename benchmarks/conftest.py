import platform

import pytest
import torch


def pytest_benchmark_update_machine_info(config, machine_info):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    machine_info["cpu_model"] = cpu
    machine_info["torch"] = torch.__version__
    machine_info["torch_threads"] = torch.get_num_threads()
    machine_info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    machine_info["platform"] = platform.platform()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
