"""Indian Pines (AVIRIS, 1992), 200 bands after water-absorption removal.

Baumgardner, Biehl & Landgrebe (2015), "220 Band AVIRIS Hyperspectral Image Data Set:
June 12, 1992 Indian Pine Test Site 3", Purdue University Research Repository,
doi:10.4231/R7RX991C.
"""

from tfhsi.data.scenes._base import EHU_URL, SCENES, Scene, SceneFile

INDIAN_PINES = SCENES.add(
    "indian_pines",
    Scene(
        name="indian_pines",
        title="Indian Pines",
        sensor="AVIRIS, 1992",
        folder="indian_pines",
        cube=SceneFile(
            filename="Indian_pines_corrected.mat",
            url=EHU_URL + "6/67/Indian_pines_corrected.mat",
            key="indian_pines_corrected",
            sha256="ec2f8808710919d566f70f0d4aa885aae1ddfd42b734aba71c5e12ca65450939",
        ),
        labels=SceneFile(
            filename="Indian_pines_gt.mat",
            url=EHU_URL + "c/c4/Indian_pines_gt.mat",
            key="indian_pines_gt",
            sha256="65c4687a8ab04f6da4789799bc3bc4f6e88bccac3ed6a2e6ae367e5e6b9e429c",
        ),
        shape=(145, 145, 200),
        class_names=(
            "Alfalfa",
            "Corn-notill",
            "Corn-mintill",
            "Corn",
            "Grass-pasture",
            "Grass-trees",
            "Grass-pasture-mowed",
            "Hay-windrowed",
            "Oats",
            "Soybean-notill",
            "Soybean-mintill",
            "Soybean-clean",
            "Wheat",
            "Woods",
            "Buildings-Grass-Trees-Drives",
            "Stone-Steel-Towers",
        ),
        rgb_bands=(43, 21, 11),
        labelled_pixels=10249,
        citation=(
            "Baumgardner, Biehl & Landgrebe (2015), Purdue University Research Repository, "
            "doi:10.4231/R7RX991C"
        ),
    ),
)
