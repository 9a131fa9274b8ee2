"""Pavia Centre (ROSIS, 2001), 102 bands."""

from tfhsi.data.scenes._base import EHU_URL, SCENES, Scene, SceneFile

PAVIA_C = SCENES.add(
    "pavia_c",
    Scene(
        name="pavia_c",
        title="Pavia Centre",
        sensor="ROSIS, 2001",
        folder="pavia",
        cube=SceneFile(
            filename="Pavia.mat",
            url=EHU_URL + "e/e3/Pavia.mat",
            key="pavia",
            sha256="b60341da323fd271cd97dd6d7a69514d385ccd7fdfc5a60c4ff5994b047f152e",
            size=129_624_657,
        ),
        labels=SceneFile(
            filename="Pavia_gt.mat", url=EHU_URL + "5/53/Pavia_gt.mat", key="pavia_gt"
        ),
        shape=(1096, 715, 102),
        class_names=(
            "Water",
            "Trees",
            "Asphalt",
            "Self-Blocking Bricks",
            "Bitumen",
            "Tiles",
            "Shadows",
            "Meadows",
            "Bare Soil",
        ),
        rgb_bands=(55, 41, 12),
        labelled_pixels=148152,
    ),
)
