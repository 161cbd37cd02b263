"""Generators by name. Each builds from (size) and offers encode / reconstruct / task_loss and
`.encoder` / `.decoder` submodules."""
from l2l.generators.mae import MAE
from l2l.registry import Registry

GENERATORS: Registry = Registry("generator")
GENERATORS.register("mae")(MAE)


def build_generator(name: str, size: str):
    return GENERATORS.get(name)(size=size)
