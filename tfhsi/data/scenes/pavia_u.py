"""Pavia University (ROSIS, 2001), 103 bands, 1.3 m ground sampling distance."""

from tfhsi.data.scenes._base import EHU_URL, SCENES, Scene, SceneFile

PAVIA_U = SCENES.add(
    "pavia_u",
    Scene(
        name="pavia_u",
        title="Pavia University",
        sensor="ROSIS, 2001",
        folder="paviaU",
        cube=SceneFile(
            filename="PaviaU.mat",
            url=EHU_URL + "e/ee/PaviaU.mat",
            key="paviaU",
            sha256="28447fa87f7a5797845e9a189c0da85e23b1d06a4ba7361e5ff44efbf834d2fb",
            size=34_806_917,
        ),
        labels=SceneFile(
            filename="PaviaU_gt.mat",
            url=EHU_URL + "5/50/PaviaU_gt.mat",
            key="paviaU_gt",
            sha256="23f6a426928f9b32984adffe659e29f554f9fb6c93b5a107528d308d5087a829",
        ),
        shape=(610, 340, 103),
        class_names=(
            "Asphalt",
            "Meadows",
            "Gravel",
            "Trees",
            "Painted metal sheets",
            "Bare Soil",
            "Bitumen",
            "Self-Blocking Bricks",
            "Shadows",
        ),
        rgb_bands=(55, 41, 12),
        labelled_pixels=42776,
    ),
)
