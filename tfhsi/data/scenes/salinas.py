"""Salinas Valley (AVIRIS, 1998), 204 bands after water-absorption removal."""

from tfhsi.data.scenes._base import EHU_URL, SCENES, Scene, SceneFile

SALINAS_CLASSES = (
    "Brocoli_green_weeds_1",
    "Brocoli_green_weeds_2",
    "Fallow",
    "Fallow_rough_plow",
    "Fallow_smooth",
    "Stubble",
    "Celery",
    "Grapes_untrained",
    "Soil_vinyard_develop",
    "Corn_senesced_green_weeds",
    "Lettuce_romaine_4wk",
    "Lettuce_romaine_5wk",
    "Lettuce_romaine_6wk",
    "Lettuce_romaine_7wk",
    "Vinyard_untrained",
    "Vinyard_vertical_trellis",
)

SALINAS = SCENES.add(
    "salinas",
    Scene(
        name="salinas",
        title="Salinas",
        sensor="AVIRIS, 1998",
        folder="salinas",
        cube=SceneFile(
            filename="Salinas_corrected.mat",
            url=EHU_URL + "a/a3/Salinas_corrected.mat",
            key="salinas_corrected",
            sha256="5ec1c0d22f56d18ecd336f8e35735863c0f160682e04e0c18ef3f89a3334d87d",
        ),
        labels=SceneFile(
            filename="Salinas_gt.mat", url=EHU_URL + "f/fa/Salinas_gt.mat", key="salinas_gt"
        ),
        shape=(512, 217, 204),
        class_names=SALINAS_CLASSES,
        rgb_bands=(43, 21, 11),
        labelled_pixels=54129,
    ),
)
