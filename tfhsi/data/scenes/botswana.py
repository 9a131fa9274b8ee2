"""Botswana, Okavango Delta (Hyperion on EO-1, 2001), 145 bands."""

from tfhsi.data.scenes._base import EHU_URL, SCENES, Scene, SceneFile

BOTSWANA = SCENES.add(
    "botswana",
    Scene(
        name="botswana",
        title="Botswana",
        sensor="Hyperion (EO-1), 2001",
        folder="botswana",
        cube=SceneFile(
            filename="Botswana.mat",
            url=EHU_URL + "7/72/Botswana.mat",
            key="Botswana",
            sha256="f1603903c844cdc2980550b0180688e8e1a72d4292595d1120e1dec2a80a91c7",
        ),
        labels=SceneFile(
            filename="Botswana_gt.mat", url=EHU_URL + "5/58/Botswana_gt.mat", key="Botswana_gt"
        ),
        shape=(1476, 256, 145),
        class_names=(
            "Water",
            "Hippo grass",
            "Floodplain grasses 1",
            "Floodplain grasses 2",
            "Reeds",
            "Riparian",
            "Firescar",
            "Island interior",
            "Acacia woodlands",
            "Acacia shrublands",
            "Acacia grasslands",
            "Short mopane",
            "Mixed mopane",
            "Exposed soils",
        ),
        rgb_bands=(75, 33, 15),
        labelled_pixels=3248,
    ),
)
