"""Kennedy Space Center (AVIRIS, 1996), 176 bands."""

from tfhsi.data.scenes._base import EHU_URL, SCENES, Scene, SceneFile

KSC = SCENES.add(
    "ksc",
    Scene(
        name="ksc",
        title="Kennedy Space Center",
        sensor="AVIRIS, 1996",
        folder="ksc",
        cube=SceneFile(filename="KSC.mat", url=EHU_URL + "2/26/KSC.mat", key="KSC"),
        labels=SceneFile(filename="KSC_gt.mat", url=EHU_URL + "a/a6/KSC_gt.mat", key="KSC_gt"),
        shape=(512, 614, 176),
        class_names=(
            "Scrub",
            "Willow swamp",
            "Cabbage palm hammock",
            "Cabbage palm/oak hammock",
            "Slash pine",
            "Oak/broadleaf hammock",
            "Hardwood swamp",
            "Graminoid marsh",
            "Spartina marsh",
            "Cattail marsh",
            "Salt marsh",
            "Mud flats",
            "Water",
        ),
        rgb_bands=(43, 21, 11),
        labelled_pixels=5211,
    ),
)
