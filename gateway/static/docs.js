// Starts Swagger UI on /docs with the gateway's own /openapi.json; everything is served locally.
// validatorUrl: null keeps the page from calling the public validator (it must work offline).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: new URL("openapi.json", window.location.href).toString(),
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    defaultModelsExpandDepth: 0,
    displayRequestDuration: true,
  });
});
